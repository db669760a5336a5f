#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars (KRaft, no ZooKeeper) from Maven Central into a cache folder,
# so the testkit's KafkaBroker, the sandbox and CI share one recipe. Idempotent: a folder holding a
# `.complete` marker is left alone. Embedded in federation-testkit (src/kafka/jars.rs), which runs
# it when the jars are missing; .ci/run runs it up front so the download is not timed by a test.
#
#   scripts/kafka-jars.sh [DEST]      DEST defaults to target/kafka-jars/$KAFKA_VERSION
# Environment: KAFKA_VERSION (default 4.4.0), LOG4J_VERSION (default 2.25.2).
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${LOG4J_VERSION:-2.25.2}"
DEST="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/kafka-jars/$KAFKA_VERSION}"

if [ -f "$DEST/.complete" ]; then
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "kafka-jars: mvn (Apache Maven) is not installed" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/kafka-jars.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>federation.testkit</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
(cd "$work" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=lib)

cat > "$work/lib/log4j2.properties" <<'PROPS'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
PROPS
touch "$work/lib/.complete"

# Publish atomically: a concurrent run that lost the race finds the folder complete.
mkdir -p "$(dirname "$DEST")"
staged="$DEST.staged.$$"
rm -rf "$staged"
mv "$work/lib" "$staged"
if ! mv -T "$staged" "$DEST" 2>/dev/null; then
  rm -rf "$staged"
  [ -f "$DEST/.complete" ] || { echo "kafka-jars: could not publish $DEST" >&2; exit 1; }
fi
echo "kafka-jars: $(ls "$DEST"/*.jar | wc -l) jars in $DEST"
