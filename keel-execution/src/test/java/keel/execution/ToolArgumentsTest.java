package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import keel.core.KeelException;
import org.junit.jupiter.api.Test;

class ToolArgumentsTest {

  private static final ToolSpec PAY =
      new ToolSpec(
          "pay",
          "Pays an invoice",
          """
          {
            "type": "object",
            "properties": {
              "amount": {"type": "number", "minimum": 0},
              "currency": {"type": "string", "enum": ["USD", "EUR"]},
              "memo": {"type": ["string", "null"]},
              "payee": {
                "type": "object",
                "properties": {
                  "iban": {"type": "string", "minLength": 15},
                  "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["iban"],
                "additionalProperties": false
              }
            },
            "required": ["amount", "currency"]
          }
          """);

  private final ToolArguments pay = ToolArguments.of(PAY);

  @Test
  void validArguments_haveNoProblems() {
    assertThat(pay.problems("{\"amount\": 12.5, \"currency\": \"EUR\", \"memo\": null}")).isEmpty();
    assertThat(
            pay.problems(
                "{\"amount\": 1, \"currency\": \"USD\", \"payee\": {\"iban\": \"DE89370400440532013000\", \"tags\": [\"a\"]}}"))
        .isEmpty();
  }

  @Test
  void wrongType_saysWhatWasExpectedAndWhatCame() {
    assertThat(pay.problems("{\"amount\": \"ten\", \"currency\": \"USD\"}"))
        .containsExactly("arguments: $.amount: must be a number, got \"ten\"");
    assertThat(pay.problems("{\"amount\": 1, \"currency\": \"USD\", \"memo\": 5}"))
        .containsExactly("arguments: $.memo: must be a string or null, got 5");
  }

  @Test
  void missingRequired_namesTheProperty() {
    assertThat(pay.problems("{\"currency\": \"USD\"}"))
        .containsExactly("arguments: $.amount: is required but missing");
  }

  @Test
  void valueOutsideEnum_listsTheAllowedValues() {
    assertThat(pay.problems("{\"amount\": 1, \"currency\": \"GBP\"}"))
        .containsExactly("arguments: $.currency: must be one of [\"USD\", \"EUR\"], got \"GBP\"");
  }

  @Test
  void nestedProblems_carryTheirFullPath() {
    assertThat(
            pay.problems(
                "{\"amount\": -1, \"currency\": \"USD\", \"payee\": {\"iban\": \"short\", \"tags\": [\"ok\", 7], \"bank\": \"x\"}}"))
        .containsExactlyInAnyOrder(
            "arguments: $.amount: must have a minimum value of 0, got -1",
            "arguments: $.payee.iban: must be at least 15 characters long, got \"short\"",
            "arguments: $.payee.tags[1]: must be a string, got 7",
            "arguments: $.payee.bank: is not an allowed property");
    assertThat(pay.problems("{\"amount\": 1, \"currency\": \"USD\", \"payee\": {}}"))
        .containsExactly("arguments: $.payee.iban: is required but missing");
  }

  @Test
  void textThatIsNotJson_isReportedWithItsPosition() {
    assertThat(pay.problems("{\"amount\": 1,"))
        .singleElement()
        .asString()
        .startsWith("arguments are not valid JSON: ")
        .contains("line 1");
    assertThat(pay.problems("{\"amount\": 1} trailing")).singleElement().asString().startsWith("arguments are not valid JSON: ");
    assertThat(pay.problems("{\"amount\": 1, \"amount\": 2, \"currency\": \"USD\"}"))
        .singleElement()
        .asString()
        .startsWith("arguments are not valid JSON: ")
        .contains("amount");
  }

  @Test
  void jsonThatIsNotAnObject_isRejected() {
    assertThat(pay.problems("[1, 2]")).containsExactly("arguments must be a JSON object, got an array [1,2]");
    assertThat(pay.problems("\"pay\"")).containsExactly("arguments must be a JSON object, got \"pay\"");
  }

  @Test
  void blankArguments_countAsTheEmptyObject() {
    ToolArguments none = ToolArguments.of(new ToolSpec("now", "The time", "{\"type\": \"object\", \"properties\": {}}"));
    assertThat(none.problems("")).isEmpty();
    assertThat(pay.problems(" ")).hasSize(2);
  }

  @Test
  void propertyNamesThatAreNotIdentifiers_areQuoted() {
    ToolArguments t =
        ToolArguments.of(
            new ToolSpec("t", "", "{\"type\": \"object\", \"properties\": {\"a-b\": {\"type\": \"integer\"}}}"));
    assertThat(t.problems("{\"a-b\": 1.5}")).containsExactly("arguments: $['a-b']: must be an integer, got 1.5");
  }

  @Test
  void refsInsideTheSchema_areFollowed() {
    ToolArguments t =
        ToolArguments.of(
            new ToolSpec(
                "t",
                "",
                "{\"$defs\": {\"n\": {\"type\": \"integer\"}}, \"type\": \"object\", \"properties\": {\"n\": {\"$ref\": \"#/$defs/n\"}}}"));
    assertThat(t.problems("{\"n\": \"x\"}")).containsExactly("arguments: $.n: must be an integer, got \"x\"");
  }

  @Test
  void manyProblems_areCapped() {
    StringBuilder props = new StringBuilder();
    StringBuilder args = new StringBuilder();
    for (int i = 0; i < 30; i++) {
      props.append(i == 0 ? "" : ",").append("\"p").append(i).append("\": {\"type\": \"integer\"}");
      args.append(i == 0 ? "" : ",").append("\"p").append(i).append("\": \"x\"");
    }
    ToolArguments t =
        ToolArguments.of(new ToolSpec("many", "", "{\"type\": \"object\", \"properties\": {" + props + "}}"));
    List<String> problems = t.problems("{" + args + "}");
    assertThat(problems).hasSize(ToolArguments.MAX_PROBLEMS + 1);
    assertThat(problems.getLast()).isEqualTo("arguments: and 10 more problems");
  }

  @Test
  void schemaThatIsNotJson_isInvalidAndNamesTheTool() {
    assertThatThrownBy(() -> ToolArguments.of(new ToolSpec("broken", "", "{\"type\": ")))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessageStartingWith("tool broken: parameters schema is not valid JSON");
    assertThatThrownBy(() -> ToolArguments.of(new ToolSpec("list", "", "[1]")))
        .isInstanceOf(KeelException.Invalid.class)
        .hasMessage("tool list: parameters schema must be a JSON object, got an array [1]");
  }

  @Test
  void sameSchemaText_isCompiledOnce() {
    ToolArguments.of(PAY);
    long before = ToolArguments.cachedSchemas();
    ToolArguments.of(new ToolSpec("pay_again", "another name, same schema", PAY.parametersSchema()));
    assertThat(ToolArguments.cachedSchemas()).isEqualTo(before);
  }

  @Test
  void manyThreads_validateWithOneInstance() throws Exception {
    try (ExecutorService pool = Executors.newFixedThreadPool(16)) {
      List<Future<List<String>>> results = new ArrayList<>();
      for (int i = 0; i < 400; i++) {
        String args =
            i % 2 == 0
                ? "{\"amount\": " + i + ", \"currency\": \"USD\"}"
                : "{\"amount\": \"x" + i + "\", \"currency\": \"USD\"}";
        results.add(pool.submit(() -> ToolArguments.of(PAY).problems(args)));
      }
      for (int i = 0; i < results.size(); i++) {
        List<String> problems = results.get(i).get();
        if (i % 2 == 0) {
          assertThat(problems).isEmpty();
        } else {
          assertThat(problems).containsExactly("arguments: $.amount: must be a number, got \"x" + i + "\"");
        }
      }
    }
  }
}
