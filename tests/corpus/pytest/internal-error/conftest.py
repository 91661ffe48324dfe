def pytest_collection_modifyitems(items):
    raise RuntimeError("the ordering plugin broke")
