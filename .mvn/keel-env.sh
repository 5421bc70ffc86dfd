# Sourced by ./mvnw and ./keel. Picks a JDK 21 or newer and the Maven repository base URL.
# Honours JAVA_HOME when it is new enough; otherwise looks in the usual places.

keel_java_major() {
  # Prints the major version of the java binary given as $1, or nothing.
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}

keel_pick_jdk() {
  # Callers may run with globbing off (mvnw uses set -f); the search below needs it.
  case $- in *f*) set +f; keel_restore_noglob=1 ;; *) keel_restore_noglob= ;; esac
  keel_pick_jdk_search
  rc=$?
  [ -n "$keel_restore_noglob" ] && set -f
  return $rc
}

keel_pick_jdk_search() {
  if [ -n "${JAVA_HOME-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    v=$(keel_java_major "$JAVA_HOME/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 21 ]; then return 0; fi
  fi
  for candidate in /usr/lib/jvm/* /usr/local/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/* /Library/Java/JavaVirtualMachines/*/Contents/Home; do
    [ -x "$candidate/bin/javac" ] || continue
    v=$(keel_java_major "$candidate/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 21 ]; then
      JAVA_HOME=$candidate
      export JAVA_HOME
      return 0
    fi
  done
  if command -v javac >/dev/null 2>&1; then
    home=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
    v=$(keel_java_major "$home/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 21 ]; then
      JAVA_HOME=$home
      export JAVA_HOME
      return 0
    fi
  fi
  echo "keel: no JDK 21 or newer found. Install one and set JAVA_HOME to it." >&2
  return 1
}

keel_repo_url() {
  case $- in *f*) set +f; keel_restore_noglob=1 ;; *) keel_restore_noglob= ;; esac
  keel_repo_url_search
  rc=$?
  [ -n "$keel_restore_noglob" ] && set -f
  return $rc
}

keel_repo_url_search() {
  # The default Maven repository as the installed Maven's super POM names it.
  [ -n "${MVNW_REPOURL-}" ] && { printf '%s' "$MVNW_REPOURL"; return 0; }
  mvn_bin=$(command -v mvn 2>/dev/null) || return 1
  mvn_home=$(dirname "$(dirname "$(readlink -f "$mvn_bin")")")
  for jar in "$mvn_home"/lib/maven-model-builder-*.jar; do
    [ -f "$jar" ] || continue
    url=$(unzip -p "$jar" org/apache/maven/model/pom-4.0.0.xml 2>/dev/null | sed -n 's/.*<url>\(https:[^<]*maven2\)<\/url>.*/\1/p' | head -n 1)
    [ -n "$url" ] && { printf '%s' "$url"; return 0; }
  done
  return 1
}
