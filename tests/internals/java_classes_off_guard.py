"""Collected only by tests/internals/test_java_classes_off.py's child pytest (not a ``test_*`` file): the
child's session really runs without featurekiln's Java classes."""

from __future__ import annotations

from featurekiln.internals.catalyst import jvm_class
from featurekiln.internals.jars import LOCAL_FS_CLASS, MAX_PAIR_CLASS, REPEATED_KEYS_CLASS, own_jar


def test_the_session_has_none_of_featurekilns_classes(spark) -> None:
    conf = spark.sparkContext.getConf()
    assert own_jar() is None
    assert "featurekiln-" not in conf.get("spark.driver.extraClassPath", "") + conf.get("spark.jars", "")
    assert conf.get("spark.hadoop.fs.file.impl", "") != LOCAL_FS_CLASS
    assert jvm_class(MAX_PAIR_CLASS) is None and jvm_class(REPEATED_KEYS_CLASS) is None
