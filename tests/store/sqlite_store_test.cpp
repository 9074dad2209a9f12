// Placeholder: the SQLite-only tests are being written.
#include <gtest/gtest.h>
