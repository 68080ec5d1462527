#include <gtest/gtest.h>
#include "tools/vpcsim/fabric/linux_fabric.h"
TEST(LinuxFabricRoot, Builds) { terway::vpcsim::LinuxFabric f("x"); (void)f; }
