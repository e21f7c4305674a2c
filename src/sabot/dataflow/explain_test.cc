#include "sabot/testing/assertions.h"
