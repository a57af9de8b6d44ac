"""Worker-side code: recognition, evaluation and the painting catalogue, free of HTTP."""
