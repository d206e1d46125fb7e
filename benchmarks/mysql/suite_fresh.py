"""100 one-insert tests, each on a fresh database (pytest-commons `mysql`)."""

import pytest


@pytest.fixture(scope="session")
def mysql_schema():
    return "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL)"


@pytest.mark.parametrize("n", range(100))
def test_insert(mysql, n):
    conn = mysql.connect()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO items (name) VALUES (%s)", (f"item {n}",))
        conn.commit()
        cur.execute("SELECT COUNT(*) FROM items")
        assert cur.fetchone() == (1,)
