"""100 one-insert tests with pytest-mysql 5 (its `mysql` fixture: a fresh database per test).

pytest-mysql has no schema hook, so each test creates its table.
"""

import pytest


@pytest.mark.parametrize("n", range(100))
def test_insert(mysql, n):
    with mysql.cursor() as cur:
        cur.execute(
            "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL)"
        )
        cur.execute("INSERT INTO items (name) VALUES (%s)", (f"item {n}",))
        mysql.commit()
        cur.execute("SELECT COUNT(*) FROM items")
        assert cur.fetchone() == (1,)
