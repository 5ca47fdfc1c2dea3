#!/usr/bin/env python3
"""Driver check with the SQLAlchemy 2 ORM over psycopg 3 (its `postgresql+psycopg` dialect).

What an application's first steps are: the engine connects (the dialect asks for
`to_regtype('hstore')` inside a savepoint), `create_all` creates a table, the ORM
inserts objects (several rows per INSERT ... RETURNING), loads one by key, updates
and deletes it, queries with a filter, and rolls back a session; an upsert through
`insert().on_conflict_do_update()`.

Usage: sqlalchemy_check.py [--host 127.0.0.1] [--port 5432]
Prints one line `PASS sqlalchemy ...` or `FAIL sqlalchemy: ...`; exit status 0 on PASS.
"""

import argparse
import sys
from decimal import Decimal

import sqlalchemy
from sqlalchemy import Numeric, String, create_engine, func, select
from sqlalchemy.dialects.postgresql import insert
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
    Base.metadata.drop_all(engine)
    engine.dispose()


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
          "update/delete/query/rollback, on_conflict_do_update")
    return 0


if __name__ == "__main__":
    sys.exit(main())
