// SPDX-License-Identifier: Apache-2.0
/** The example as a named module, to check segfit works on the module path. */
module io.segfit.example {
    requires io.segfit;
}
