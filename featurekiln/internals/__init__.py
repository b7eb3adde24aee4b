"""The one door to Delta's, Spark's and Hadoop's JVM internals: py4j calls into non-public classes and
featurekiln's own Java classes. Nothing outside this package touches pyspark's ``_jvm``; what each module
relies on, the versions it was checked against and how to check an upgrade are in README.md here."""
