"""Train/valid/test windows on the data calendar: settings, placement, the scheduled retrain's gate."""
