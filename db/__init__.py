"""Database assets that live beside the code: migrations and the content catalog loader."""
