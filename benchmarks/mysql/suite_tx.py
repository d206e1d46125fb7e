"""100 one-insert tests, each in a transaction rolled back afterwards (`mysql_tx`)."""

import pytest


@pytest.fixture(scope="session")
def mysql_schema():
    return "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL)"


@pytest.mark.parametrize("n", range(100))
def test_insert(mysql_tx, n):
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO items (name) VALUES (%s)", (f"item {n}",))
        mysql_tx.commit()
        cur.execute("SELECT COUNT(*) FROM items")
        assert cur.fetchone() == (1,)
