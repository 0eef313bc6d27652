"""Libraries the built-in stages use (and third-party stages may): documents, tokens, training, text
classifiers, post-training, executors, kit. Never imports the Dagster layer or plugins."""
