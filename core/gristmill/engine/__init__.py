"""The engine: artifact store, running one stage instance (cache, launch, commit), launching children."""
