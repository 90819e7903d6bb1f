"""Readers, protocols, synthetic hands, image cache, augmentation and samplers."""
