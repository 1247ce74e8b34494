"""From the original's files to Keras models: config, checkpoint reader, weight mapping."""
