"""CRAFT: shared configuration and the command line that ties the layers together."""
