def test_create_and_get(records):
    r = records.create("regions", {"name": "North"})
    c = records.create("customers", {"name": "Acme", "region": r.id, "email": "A@X.COM"})
    got = records.get("customers", c.id)
    assert got.values["email"] == "a@x.com"
    assert got.values["region"] == r.id
    assert got.version == 1
