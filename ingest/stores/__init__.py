"""Storage backends. Only ``s3`` exists; the pipeline talks to it through ``S3Store``'s small API."""
