package keel.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class PostgresConfigTest {

  @Test
  void libpqUrl_givesServerDatabaseLoginAndDefaults() {
    PostgresConfig c = PostgresConfig.parse("postgresql://keel:pw@db.internal:5433/agents");
    assertThat(c.hosts()).isEqualTo("db.internal:5433");
    assertThat(c.database()).isEqualTo("agents");
    assertThat(c.user()).contains("keel");
    assertThat(c.password()).contains("pw");
    assertThat(c.parameters()).isEmpty();
    assertThat(c.poolSize()).isEqualTo(PostgresConfig.DEFAULT_POOL_SIZE);
    assertThat(c.poolTimeout()).isEqualTo(PostgresConfig.DEFAULT_POOL_TIMEOUT);
    assertThat(c.durable()).isTrue();
    assertThat(c.jdbcUrl()).isEqualTo("jdbc:postgresql://db.internal:5433/agents");
    assertThat(c.describe()).isEqualTo("postgresql://keel@db.internal:5433/agents");
    assertThat(c.schema()).isEqualTo("public");
  }

  @Test
  void postgresScheme_percentEscapes_andNoLogin() {
    PostgresConfig c = PostgresConfig.parse("postgres://ann%40corp:p%3Aw%2Fd+x@localhost/my%20db");
    assertThat(c.user()).contains("ann@corp");
    assertThat(c.password()).contains("p:w/d+x");
    assertThat(c.database()).isEqualTo("my db");
    assertThat(c.jdbcUrl()).isEqualTo("jdbc:postgresql://localhost/my%20db");

    PostgresConfig bare = PostgresConfig.parse("postgresql:///keel");
    assertThat(bare.hosts()).isEqualTo("localhost");
    assertThat(bare.user()).isEmpty();
    assertThat(bare.password()).isEmpty();
  }

  @Test
  void parameters_keelsAreTaken_libpqNamesMapped_theDriversPassedOn() {
    PostgresConfig c =
        PostgresConfig.parse(
            "postgresql://keel@a:5432,b:5432/keel?sslmode=require&pool_size=32&pool_timeout=3"
                + "&connect_timeout=4&application_name=node-1&currentSchema=keel");
    assertThat(c.hosts()).isEqualTo("a:5432,b:5432");
    assertThat(c.poolSize()).isEqualTo(32);
    assertThat(c.poolTimeout()).isEqualTo(Duration.ofSeconds(3));
    assertThat(c.parameters())
        .containsExactly(
            Map.entry("sslmode", "require"), Map.entry("connectTimeout", "4"), Map.entry("ApplicationName", "node-1"),
            Map.entry("currentSchema", "keel"));
    assertThat(c.schema()).isEqualTo("keel");
    assertThat(c.jdbcUrl())
        .isEqualTo("jdbc:postgresql://a:5432,b:5432/keel?sslmode=require&connectTimeout=4&ApplicationName=node-1&currentSchema=keel");
  }

  @Test
  void jdbcUrl_takesTheLoginFromItsParameters_andKeepsItOutOfTheUrl() {
    PostgresConfig c = PostgresConfig.parse("jdbc:postgresql://[::1]:6543/keel?user=keel&password=pw&ssl=true");
    assertThat(c.hosts()).isEqualTo("[::1]:6543");
    assertThat(c.user()).contains("keel");
    assertThat(c.password()).contains("pw");
    assertThat(c.jdbcUrl()).isEqualTo("jdbc:postgresql://[::1]:6543/keel?ssl=true");
    assertThat(PostgresConfig.parse("jdbc:postgresql:keel").jdbcUrl()).isEqualTo("jdbc:postgresql://localhost/keel");
  }

  @Test
  void thePassword_isNeverShown() {
    PostgresConfig c = PostgresConfig.parse("postgresql://keel:hunter2@db/keel?password=hunter3");
    assertThat(c.password()).contains("hunter3");
    assertThat(c.toString()).doesNotContain("hunter").contains("password set");
    assertThat(c.describe()).doesNotContain("hunter");
    assertThat(c.jdbcUrl()).doesNotContain("hunter");
    assertThat(c.withPassword("x").password()).contains("x");
  }

  @Test
  void withers_changeOneThing() {
    PostgresConfig c = PostgresConfig.parse("postgresql://keel@db/keel?sslmode=require");
    assertThat(c.withDatabase("other").jdbcUrl()).isEqualTo("jdbc:postgresql://db/other?sslmode=require");
    assertThat(c.withSchema("t1").schema()).isEqualTo("t1");
    assertThat(c.withSchema("t1").parameters()).containsEntry("sslmode", "require");
    assertThat(c.withPoolSize(3).poolSize()).isEqualTo(3);
    assertThat(c.withDurable(false).durable()).isFalse();
    assertThat(c.withDurable(false).user()).isEqualTo(Optional.of("keel"));
  }

  @Test
  void isPostgresUrl_byScheme() {
    assertThat(PostgresConfig.isPostgresUrl("postgresql://h/d")).isTrue();
    assertThat(PostgresConfig.isPostgresUrl("POSTGRES://h/d")).isTrue();
    assertThat(PostgresConfig.isPostgresUrl("jdbc:postgresql://h/d")).isTrue();
    assertThat(PostgresConfig.isPostgresUrl("mysql://h/d")).isFalse();
    assertThat(PostgresConfig.isPostgresUrl("/var/lib/keel")).isFalse();
  }

  @Test
  void badUrls_areClearErrors_sayingWhatIsWrong() {
    assertThatThrownBy(() -> PostgresConfig.parse("mysql://h/d"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a PostgreSQL URL")
        .hasMessageContaining("postgresql://USER:PASSWORD@HOST:PORT/DATABASE");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://keel:secret@db:54x2/keel"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("invalid port \"54x2\"")
        .hasMessageNotContaining("secret");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://keel:secret@db:70000/keel"))
        .hasMessageContaining("invalid port \"70000\"");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://keel:secret@db:5432"))
        .hasMessageContaining("names no database").hasMessageNotContaining("secret");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://db/keel?pool_sise=3"))
        .hasMessageContaining("unknown parameter \"pool_sise\"").hasMessageContaining("pool_size");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://db/keel?pool_size=0"))
        .hasMessageContaining("pool_size must be a positive whole number, got \"0\"");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://db/keel?pool_size=5000"))
        .hasMessageContaining("pool_size must be between 1 and 1000, got 5000");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://db/keel?pool_timeout=soon"))
        .hasMessageContaining("pool_timeout must be a positive whole number");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://keel:100%zz@db/keel"))
        .hasMessageContaining("malformed %-escape in the password").hasMessageNotContaining("zz");
    assertThatThrownBy(() -> PostgresConfig.parse("jdbc:postgresql://keel:pw@db/keel"))
        .hasMessageContaining("?user=");
    assertThatThrownBy(() -> PostgresConfig.parse("postgresql://db,/keel")).hasMessageContaining("empty host");
  }
}
