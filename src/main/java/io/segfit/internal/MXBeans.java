// SPDX-License-Identifier: Apache-2.0
/*
 * Registers heaps' MXBeans with the platform MBean server: the only class that touches JMX, so
 * that javax.management stays out of segfit's API (a heap's MXBean name is a String).
 *
 * Names are io.segfit:type=Heap,name=<heap name>, the value quoted when it holds a character
 * ObjectName reserves; when the name is taken (two heaps may share a name), #2, #3... is
 * appended. JMX is a convenience: a failure to register or unregister is logged, never thrown,
 * so a heap works without its MXBean.
 */
package io.segfit.internal;

import java.lang.management.ManagementFactory;
import javax.management.InstanceAlreadyExistsException;
import javax.management.ObjectName;

public final class MXBeans {
  private MXBeans() {}

  /** Beyond this many heaps of one name, the next one goes without an MXBean. */
  private static final int MAX_SUFFIX = 1000;

  /**
   * Registers bean for the heap named heap: the name it was registered under, or null if it
   * could not be (logged).
   */
  public static String register(String heap, Object bean) {
    for (int n = 1; n < MAX_SUFFIX; n++) {
      String value = n == 1 ? heap : heap + "#" + n;
      try {
        ObjectName name = new ObjectName("io.segfit:type=Heap,name=" + quoteIfNeeded(value));
        ManagementFactory.getPlatformMBeanServer().registerMBean(bean, name);
        return name.toString();
      } catch (InstanceAlreadyExistsException taken) {
        // try the next suffix
      } catch (Exception | LinkageError e) {
        log(heap, "cannot register its MXBean", e);
        return null;
      }
    }
    log(heap, "cannot register its MXBean: every name from '" + heap + "' to '" + heap + "#"
        + (MAX_SUFFIX - 1) + "' is taken", null);
    return null;
  }

  /** Unregisters what register returned for the heap named heap. */
  public static void unregister(String heap, String name) {
    try {
      ManagementFactory.getPlatformMBeanServer().unregisterMBean(ObjectName.getInstance(name));
    } catch (Exception e) {
      log(heap, "cannot unregister its MXBean", e);
    }
  }

  private static String quoteIfNeeded(String value) {
    for (int i = 0; i < value.length(); i++) {
      if (",=:\"*?\n".indexOf(value.charAt(i)) >= 0) return ObjectName.quote(value);
    }
    return value;
  }

  private static void log(String heap, String message, Throwable e) {
    System.getLogger("io.segfit").log(System.Logger.Level.WARNING,
        "heap '" + heap + "': " + message, e);
  }
}
