"""The wsrun bench results board: a WSGI app (`board.app:app`) over a SQLite file."""
