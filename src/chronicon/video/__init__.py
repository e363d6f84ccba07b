"""Video: probing files and sampling the frames that matter."""
