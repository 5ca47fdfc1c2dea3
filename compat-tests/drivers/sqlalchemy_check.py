#!/usr/bin/env python3
"""Driver check with the SQLAlchemy 2 ORM over psycopg 3 (its `postgresql+psycopg` dialect).

What an application's first steps are: the engine connects (the dialect asks for
`to_regtype('hstore')` inside a savepoint), `create_all` creates a table, the ORM
inserts objects (several rows per INSERT ... RETURNING), loads one by key, updates
and deletes it, queries with a filter, and rolls back a session; an upsert through
`insert().on_conflict_do_update()`. Then what Alembic's autogenerate, pandas and
`Table(..., autoload_with=engine)` do: the inspector reflects a table's columns (types,
nullability, defaults), its primary key, indexes, unique constraints and foreign keys,
and a Table is loaded from the database. ARRAY columns: created, written from lists,
read back, filtered with contains() and any_(), and reflected as ARRAY types.

Usage: sqlalchemy_check.py [--host 127.0.0.1] [--port 5432]
Prints one line `PASS sqlalchemy ...` or `FAIL sqlalchemy: ...`; exit status 0 on PASS.
"""

import argparse
import sys
from decimal import Decimal

import sqlalchemy
from sqlalchemy import Numeric, String, create_engine, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "compat_sa_accounts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(30))
    balance: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=0)


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def run(args):
    url = f"postgresql+psycopg://postgres@{args.host}:{args.port}/postgres"
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Account(id=i, name=f"a{i}") for i in range(1, 6)])
        session.commit()
        account = session.get(Account, 3)
        check(account is not None and account.balance == Decimal("0.00"),
              f"loaded {account!r} with balance {account and account.balance!r}")
        account.balance = Decimal("12.50")
        session.commit()
        rich = session.scalars(select(Account).where(Account.balance > 1)).all()
        check([(a.id, a.balance) for a in rich] == [(3, Decimal("12.50"))],
              f"filtered query gave {[(a.id, a.balance) for a in rich]!r}")
        session.delete(session.get(Account, 1))
        session.commit()
        session.add(Account(id=9, name="rolled back"))
        session.flush()
        session.rollback()
        count = session.scalar(select(func.count()).select_from(Account))
        check(count == 4, f"{count} accounts, expected 4")
        upsert = insert(Account).values(id=2, name="upserted", balance=5)
        upsert = upsert.on_conflict_do_update(
            index_elements=[Account.id],
            set_={"name": upsert.excluded.name, "balance": Account.balance + upsert.excluded.balance},
        )
        session.execute(upsert)
        session.commit()
        row = session.execute(select(Account.name, Account.balance).where(Account.id == 2)).one()
        check(tuple(row) == ("upserted", Decimal("5.00")), f"upsert gave {tuple(row)!r}")
    reflect(engine)
    check_arrays(engine)
    Base.metadata.drop_all(engine)
    engine.dispose()


def reflect(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS compat_sa_reflected")
        conn.exec_driver_sql(
            "CREATE TABLE compat_sa_reflected (region varchar(8) NOT NULL, id bigint NOT NULL,"
            " \"order\" text, price numeric(10, 2), created timestamp DEFAULT now(),"
            " PRIMARY KEY (region, id))")
    inspector = sqlalchemy.inspect(engine)
    check(inspector.has_table("compat_sa_reflected"), "has_table gave False")
    schemas = inspector.get_schema_names()
    check(schemas == ["information_schema", "public"], f"get_schema_names gave {schemas!r}")
    columns = [(c["name"], str(c["type"]), c["nullable"], c["default"])
               for c in inspector.get_columns("compat_sa_reflected")]
    check(columns == [("region", "VARCHAR(8)", False, None), ("id", "BIGINT", False, None),
                      ("order", "TEXT", True, None), ("price", "NUMERIC(10, 2)", True, None),
                      ("created", "TIMESTAMP", True, "now()")],
          f"get_columns gave {columns!r}")
    key = inspector.get_pk_constraint("compat_sa_reflected")
    check((key["name"], key["constrained_columns"]) == ("compat_sa_reflected_pkey", ["region", "id"]),
          f"get_pk_constraint gave {key!r}")
    for what, found in [("get_indexes", inspector.get_indexes("compat_sa_reflected")),
                        ("get_unique_constraints",
                         inspector.get_unique_constraints("compat_sa_reflected")),
                        ("get_foreign_keys", inspector.get_foreign_keys("compat_sa_reflected"))]:
        check(found == [], f"{what} gave {found!r}")
    table = sqlalchemy.Table("compat_sa_reflected", sqlalchemy.MetaData(), autoload_with=engine)
    check([c.name for c in table.primary_key] == ["region", "id"],
          f"autoloaded primary key {[c.name for c in table.primary_key]!r}")
    check(str(table.c.price.type) == "NUMERIC(10, 2)" and table.c.region.type.length == 8,
          f"autoloaded types {table.c.price.type!r}, {table.c.region.type!r}")
    with engine.begin() as conn:
        conn.execute(table.insert().values(region="eu", id=1, order="x", price=Decimal("1.50")))
        row = conn.execute(select(table.c.order, table.c.price)).one()
        check(tuple(row) == ("x", Decimal("1.50")), f"a row through the loaded table: {row!r}")
        conn.exec_driver_sql("DROP TABLE compat_sa_reflected")


def check_arrays(engine):
    metadata = sqlalchemy.MetaData()
    table = sqlalchemy.Table(
        "compat_sa_arrays", metadata,
        sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True, autoincrement=False),
        sqlalchemy.Column("tags", ARRAY(sqlalchemy.Text)),
        sqlalchemy.Column("nums", ARRAY(Numeric(8, 2))))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": 1, "tags": ["a", "b c", None], "nums": [1.5]},
                                      {"id": 2, "tags": [], "nums": None}])
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]
        check(rows == [(1, ["a", "b c", None], [Decimal("1.50")]), (2, [], None)],
              f"ARRAY columns read back as {rows!r}")
        found = conn.execute(select(table.c.id).where(table.c.tags.contains(["a"]))).all()
        check([tuple(r) for r in found] == [(1,)], f"tags.contains(['a']) found {found!r}")
        found = conn.execute(select(table.c.id).where(
            sqlalchemy.literal("b c") == sqlalchemy.any_(table.c.tags))).all()
        check([tuple(r) for r in found] == [(1,)], f"'b c' = any_(tags) found {found!r}")
    columns = [(c["name"], repr(c["type"])) for c in sqlalchemy.inspect(engine).get_columns(
        "compat_sa_arrays")]
    check(columns == [("id", "INTEGER()"), ("tags", "ARRAY(TEXT())"),
                      ("nums", "ARRAY(NUMERIC(precision=8, scale=2))")],
          f"ARRAY columns reflected as {columns!r}")
    metadata.drop_all(engine)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    args = parser.parse_args()
    try:
        run(args)
    except CheckFailed as e:
        print(f"FAIL sqlalchemy: {e}")
        return 1
    except sqlalchemy.exc.SQLAlchemyError as e:
        print(f"FAIL sqlalchemy: {type(e).__name__}: {str(e).splitlines()[0]}")
        return 1
    print(f"PASS sqlalchemy {sqlalchemy.__version__}: connect, create_all, ORM insert/get/"
          "update/delete/query/rollback, on_conflict_do_update, inspector reflection, autoload, "
          "ARRAY columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
