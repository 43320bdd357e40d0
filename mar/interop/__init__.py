"""Interoperability: checkpoints of the official MAR code, and the Hugging Face Hub."""
