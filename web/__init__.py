"""HTTP front end and command line of PAIN."""
