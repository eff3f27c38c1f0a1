"""Ingestion: the aclImdb corpus (folder, archive, URL or span series) checked and turned into example splits."""
