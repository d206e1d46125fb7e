import httpx

QUERY = """
query Cheap($max: Int) {
  items(maxPrice: $max) { id name priceCents }
  item(id: 2) { name }
}
"""


def test_graphql_reads_what_rest_wrote(api: httpx.Client) -> None:
    for name, price in (("lamp", 1999), ("desk", 25000), ("pen", 150)):
        api.post("/items", json={"name": name, "price_cents": price})

    response = api.post("/graphql", json={"query": QUERY, "variables": {"max": 2000}})
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "items": [
                {"id": 1, "name": "lamp", "priceCents": 1999},
                {"id": 3, "name": "pen", "priceCents": 150},
            ],
            "item": {"name": "desk"},
        }
    }


def test_graphql_errors_are_reported(api: httpx.Client) -> None:
    response = api.post("/graphql", json={"query": "{ items { nope } }"})
    assert "Cannot query field 'nope'" in response.json()["errors"][0]["message"]
