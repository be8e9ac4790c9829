// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.segfit.internal.Option;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The segfit.* properties configure the default heap (in child JVMs: it is created once). */
@TestSupport.ChildJvm
class DefaultHeapPropertiesTest {

  private static TestSupport.Child child(String... props) throws Exception {
    List<String> o = new ArrayList<>(TestSupport.nativeAccess());
    o.addAll(TestSupport.libraryOptions());
    o.addAll(List.of(props));
    return TestSupport.runChild(o, ChildMain.class.getName(), "default-heap");
  }

  @Test
  void propertiesConfigureTheDefaultHeap() throws Exception {
    TestSupport.Child c = child("-Dsegfit.maxBytes=8m", "-Dsegfit.leakDetection=paranoid",
        "-Dsegfit.purgeDelayMs=0", "-Dsegfit.debug=true", "-Dsegfit.jmx=false");
    assertEquals(0, c.exitCode(), c::toString);
    assertTrue(c.stdout().contains("name=default"), c::toString);
    assertTrue(c.stdout().contains("maxBytes=" + (8 << 20)), c::toString);
    assertTrue(c.stdout().contains("leakDetection=PARANOID"), c::toString);
    assertTrue(c.stdout().contains("mxbean=null"), c::toString);
    assertTrue(c.stdout().contains("limit=true"), c::toString);
  }

  @Test
  void defaultsWithoutProperties() throws Exception {
    TestSupport.Child c = child();
    assertEquals(0, c.exitCode(), c::toString);
    assertTrue(c.stdout().contains("maxBytes=0"), c::toString);
    assertTrue(c.stdout().contains("leakDetection=DISABLED"), c::toString);
    assertTrue(c.stdout().contains("mxbean=io.segfit:type=Heap,name=default"), c::toString);
  }

  @Test
  void invalidPropertiesAreNamed() throws Exception {
    TestSupport.Child c = child("-Dsegfit.maxBytes=lots");
    assertTrue(c.stdout().contains("invalid=system property segfit.maxBytes=lots is invalid"),
        c::toString);
    c = child("-Dsegfit.leakDetection=sometimes");
    assertTrue(c.stdout().contains("segfit.leakDetection=sometimes"), c::toString);
  }

  @Test
  void docsListEveryPropertyWithItsDefault() throws Exception {
    // The README holds the table; it must match the code.
    String readme = Files.readString(Paths.get("README.md"), StandardCharsets.UTF_8);
    assertTrue(readme.contains(Option.markdownTable()), "README.md must contain the table printed by "
        + "`java -cp target/classes io.segfit.internal.Option`:\n" + Option.markdownTable());
  }
}
