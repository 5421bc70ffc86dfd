package keel.bench;

import java.util.List;
import java.util.Locale;
import keel.core.EventCodec;
import keel.execution.Tool;
import keel.execution.ToolContext;
import keel.execution.ToolEnvironment;
import keel.execution.ToolOutput;
import keel.execution.ToolProvider;
import keel.execution.ToolSpec;
import tools.jackson.databind.JsonNode;

/**
 * The cost benchmark's tools, {@code internal://billing}: four read-only billing look-ups with real
 * JSON schemas ({@code lookup_invoice}, {@code ledger_balance}, {@code list_payments}, {@code
 * convert_currency}) whose results are a deterministic function of their arguments. Keel finds them
 * with {@link java.util.ServiceLoader} (keel-bench's {@code META-INF/services}) when a server runs
 * in the bench's JVM; the raw-API baseline of {@link CostBench} runs the same {@link #result} locally,
 * so both variants see the same tool results.
 *
 * <p>Thread-safe and stateless.
 */
public final class BillingTools implements ToolProvider {

  /** The capability an agent lists in {@code spec.tools} to be granted these tools. */
  static final String CAPABILITY = "internal://billing";

  /** The tools as a model sees them, in the order they are declared. */
  static final List<ToolSpec> SPECS =
      List.of(
          new ToolSpec(
              "lookup_invoice",
              "Looks up one invoice by its number and returns the customer, the amount in EUR, the status"
                  + " (open, paid, overdue or disputed), the due date and the invoice lines. Use it before"
                  + " quoting any figure of an invoice; never guess an amount.",
              "{\"type\":\"object\",\"properties\":{\"invoice_id\":{\"type\":\"string\",\"description\":\"The invoice"
                  + " number exactly as written by the customer, e.g. INV-2041-3.\"}},\"required\":[\"invoice_id\"],"
                  + "\"additionalProperties\":false}"),
          new ToolSpec(
              "ledger_balance",
              "Returns the current balance of a customer account in the general ledger, with the amounts"
                  + " overdue by 30, 60 and 90 days and the credit limit. Balances are in EUR.",
              "{\"type\":\"object\",\"properties\":{\"account\":{\"type\":\"string\",\"description\":\"The ledger"
                  + " account, e.g. ACC-0417.\"},\"as_of\":{\"type\":\"string\",\"description\":\"An ISO-8601 date;"
                  + " today when absent.\"}},\"required\":[\"account\"],\"additionalProperties\":false}"),
          new ToolSpec(
              "list_payments",
              "Lists the payments received on an account since a date, newest first: date, amount in EUR,"
                  + " method and the invoice each payment was matched to (null when unmatched).",
              "{\"type\":\"object\",\"properties\":{\"account\":{\"type\":\"string\",\"description\":\"The ledger"
                  + " account, e.g. ACC-0417.\"},\"since\":{\"type\":\"string\",\"description\":\"An ISO-8601 date.\"},"
                  + "\"limit\":{\"type\":\"integer\",\"description\":\"At most this many payments, 1 to 50;"
                  + " 10 when absent.\"}},\"required\":[\"account\",\"since\"],\"additionalProperties\":false}"),
          new ToolSpec(
              "convert_currency",
              "Converts an amount between EUR, USD and GBP at the European Central Bank's reference rate of"
                  + " the day, rounded to the cent.",
              "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\",\"description\":\"The amount to"
                  + " convert.\"},\"from\":{\"type\":\"string\",\"enum\":[\"EUR\",\"USD\",\"GBP\"]},\"to\":{\"type\":"
                  + "\"string\",\"enum\":[\"EUR\",\"USD\",\"GBP\"]}},\"required\":[\"amount\",\"from\",\"to\"],"
                  + "\"additionalProperties\":false}"));

  private static final String[] STATUSES = {"open", "paid", "overdue", "disputed"};
  private static final String[] METHODS = {"sepa_transfer", "card", "direct_debit"};

  @Override
  public List<Tool> tools(ToolEnvironment environment) {
    return SPECS.stream().<Tool>map(BillingTool::new).toList();
  }

  /**
   * What the tool {@code name} returns for {@code arguments} (valid arguments: Keel checks them
   * against the schema before a tool runs; the baseline's main model only writes valid ones).
   */
  static String result(String name, String arguments) {
    JsonNode a = EventCodec.mapper().readTree(arguments);
    return switch (name) {
      case "lookup_invoice" -> {
        String id = a.path("invoice_id").asString("");
        int h = hash(id);
        yield String.format(Locale.ROOT,
            "{\"invoice_id\":\"%s\",\"customer\":\"CUST-%04d\",\"account\":\"ACC-%04d\",\"amount_eur\":%d.%02d,"
                + "\"status\":\"%s\",\"due\":\"2025-%02d-%02d\",\"lines\":[{\"sku\":\"SRV-%03d\",\"description\":"
                + "\"Managed service, monthly\",\"quantity\":%d,\"unit_eur\":%d.00},{\"sku\":\"SUP-%03d\","
                + "\"description\":\"Premium support\",\"quantity\":1,\"unit_eur\":%d.00}]}",
            id, h % 9000, h % 1000, 100 + h % 9000, h % 100, STATUSES[h % STATUSES.length], 1 + h % 12,
            1 + h % 28, h % 997, 1 + h % 9, 50 + h % 400, h % 991, 20 + h % 200);
      }
      case "ledger_balance" -> {
        String account = a.path("account").asString("");
        int h = hash(account);
        yield String.format(Locale.ROOT,
            "{\"account\":\"%s\",\"as_of\":\"%s\",\"balance_eur\":%d.%02d,\"overdue_30_eur\":%d.00,"
                + "\"overdue_60_eur\":%d.00,\"overdue_90_eur\":%d.00,\"credit_limit_eur\":%d000.00}",
            account, a.path("as_of").asString("2025-11-14"), h % 50_000, h % 100, h % 3000, h % 1500, h % 700,
            5 + h % 45);
      }
      case "list_payments" -> {
        String account = a.path("account").asString("");
        int h = hash(account + a.path("since").asString(""));
        int n = Math.min(3, a.path("limit").asInt(10));
        StringBuilder b = new StringBuilder("{\"account\":\"").append(account).append("\",\"payments\":[");
        for (int i = 0; i < n; i++) {
          int p = hash(account + i) ^ h;
          p = p & Integer.MAX_VALUE;
          b.append(i > 0 ? "," : "")
              .append(String.format(Locale.ROOT,
                  "{\"date\":\"2025-%02d-%02d\",\"amount_eur\":%d.%02d,\"method\":\"%s\",\"invoice\":\"INV-%d-%d\"}",
                  1 + p % 12, 1 + p % 28, 100 + p % 5000, p % 100, METHODS[p % METHODS.length], p % 5000, p % 4));
        }
        yield b.append("]}").toString();
      }
      case "convert_currency" -> {
        double amount = a.path("amount").asDouble();
        String from = a.path("from").asString("EUR");
        String to = a.path("to").asString("EUR");
        double rate = eur(to) / eur(from);
        yield String.format(Locale.ROOT,
            "{\"amount\":%.2f,\"from\":\"%s\",\"to\":\"%s\",\"rate\":%.6f,\"converted\":%.2f,\"rate_date\":\"2025-11-14\"}",
            amount, from, to, rate, amount * rate);
      }
      default -> throw new IllegalArgumentException("no billing tool is named " + name);
    };
  }

  private static double eur(String currency) {
    return switch (currency) {
      case "USD" -> 1.1596;
      case "GBP" -> 0.8819;
      default -> 1.0;
    };
  }

  private static int hash(String s) {
    return s.hashCode() & Integer.MAX_VALUE;
  }

  /** One billing tool: read-only, so idempotent. */
  private record BillingTool(ToolSpec spec) implements Tool {
    @Override
    public String capability() {
      return CAPABILITY;
    }

    @Override
    public boolean idempotent() {
      return true;
    }

    @Override
    public ToolOutput call(ToolContext context, String arguments) {
      return ToolOutput.ok(result(spec.name(), arguments));
    }
  }
}
