"""The application: command line, model sources, the animation pipeline, video I/O."""
