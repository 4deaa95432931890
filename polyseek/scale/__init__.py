"""Engines that run the index run's extraction and encoding beyond this process (Ray Data), and the GPU ingest path."""
