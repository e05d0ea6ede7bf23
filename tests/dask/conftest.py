"""One real multi-process LocalCluster for the whole test session."""
import pytest

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="session")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="session")
def client(cluster):
    with distributed.Client(cluster) as c:
        yield c
