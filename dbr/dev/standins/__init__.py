"""Local stand-ins for outside services: real HTTP servers on 127.0.0.1 speaking the real wire
format, runnable as `python -m dbr.dev.standins.<name> --port N` or in-process for tests."""
