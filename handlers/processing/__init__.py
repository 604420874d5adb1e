"""The processor's work: read a file within limits, normalize its records, write the output."""
