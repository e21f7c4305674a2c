"""Writes the inputs of orders-customers-join.yaml: a seeded orders table and customers table as
Parquet, so the join reads the same rows on every machine.

    .venv/bin/python examples/make-orders-customers.py     # writes examples/data/orders/ and
                                                           # examples/data/customers/

customers (1,800 rows, one file): customer_id (int64, 0..1999 but every 10th id missing),
name (string), country (string, one of 8). orders (60,000 rows, 3 files of 4 row groups):
order_id (int64), customer_id (int64; 2% null, 3% ids no customer has, a tenth of the orders from
customer 42), amount (double, two decimals). `--out DIR` writes under DIR instead of
examples/data.
"""

import argparse
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

CUSTOMERS = 2000
ORDERS = 60000
COUNTRIES = ["CH", "DE", "FR", "IT", "NL", "PL", "SE", "US"]


def customers_table(rng):
    ids = [i for i in range(CUSTOMERS) if i % 10 != 3]
    return pa.table({
        "customer_id": pa.array(ids, pa.int64()),
        "name": pa.array([f"customer-{i:04d}" for i in ids], pa.string()),
        "country": pa.array([rng.choice(COUNTRIES) for _ in ids], pa.string()),
    })


def orders_table(rng):
    customer = []
    for _ in range(ORDERS):
        draw = rng.random()
        if draw < 0.02:
            customer.append(None)
        elif draw < 0.05:
            customer.append(CUSTOMERS + rng.randrange(500))  # no such customer
        elif draw < 0.15:
            customer.append(42)  # a hot key
        else:
            customer.append(rng.randrange(CUSTOMERS))
    return pa.table({
        "order_id": pa.array(range(ORDERS), pa.int64()),
        "customer_id": pa.array(customer, pa.int64()),
        "amount": pa.array([rng.randrange(1, 100000) / 100 for _ in range(ORDERS)], pa.float64()),
    })


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "data"))
    args = parser.parse_args()
    rng = random.Random(2026)
    customers = customers_table(rng)
    orders = orders_table(rng)
    for name in ("orders", "customers"):
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
        for old in os.listdir(os.path.join(args.out, name)):
            if old.endswith(".parquet"):
                os.remove(os.path.join(args.out, name, old))
    pq.write_table(customers, os.path.join(args.out, "customers", "customers.parquet"))
    per_file = ORDERS // 3
    for f in range(3):
        pq.write_table(orders.slice(f * per_file, per_file),
                       os.path.join(args.out, "orders", f"orders-{f}.parquet"),
                       row_group_size=per_file // 4)
    print(f"wrote {ORDERS} orders and {customers.num_rows} customers under {args.out}")


if __name__ == "__main__":
    main()
