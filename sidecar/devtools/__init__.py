"""Developer tools, apart from the product's path: the demo and the local nginx stack."""
