"""The fetcher's work: parse a fetch request and call the HTTP API safely."""
