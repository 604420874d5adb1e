"""Deploy: build the desired resources, observe what exists, plan the difference, apply it."""
