"""Beat's periodic work: the steps that drain the due-time sets, and the beat scheduler."""
