"""Actor-system lifecycle, configuration and the request API that the front end calls."""
