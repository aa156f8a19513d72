"""Models: tiny from-scratch configs and adaptation methods."""
