"""TensorFlow / Keras port of the First Order Motion Model (Siarohin et al., NeurIPS 2019)."""
