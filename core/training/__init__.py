"""The trainer's parts: data on the device, schedule, optimizers, loop, evaluation, run lifecycle."""
