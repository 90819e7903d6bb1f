"""Background training runs: SQLite queue, scheduler, process control, sweeps, chains."""
