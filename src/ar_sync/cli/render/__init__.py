"""Rich rendering of run reports, history, previews, pauses and rule versions."""
