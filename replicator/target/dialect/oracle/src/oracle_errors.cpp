// ORA error numbers: retry classes and bad-data errors (replicator/README.md, "Oracle").
#include "molt/replicator/dialect/oracle.hpp"

namespace molt::replicator::oracle {

retry_class classify_ora(int number) noexcept {
    switch (number) {
    // A unique value another row still holds (another row order may succeed); concurrent
    // MERGE inserts of one key land here too.
    case 1: return retry_class::unique;
    // Lost a race: deadlock, serialization failure, a lock wait that gave up, our own timeout.
    case 60:
    case 8177:
    case 54:
    case 30006:
    case 1013: return retry_class::retry_now;
    // A parent row has not arrived yet (2291), or a child row still references it (2292).
    case 2291:
    case 2292: return retry_class::defer;
    // The connection, the listener or the instance is gone or restarting, or the session was
    // killed: connect again.
    case 28:
    case 1012:
    case 1033:
    case 1034:
    case 1089:
    case 1092:
    case 1109:
    case 2396:
    case 3106:
    case 3113:
    case 3114:
    case 3135:
    case 12152:
    case 12153:
    case 12170:
    case 12514:
    case 12516:
    case 12520:
    case 12528:
    case 12535:
    case 12537:
    case 12541:
    case 12543:
    case 12547:
    case 12560:
    case 12571:
    case 25408: return retry_class::reconnect;
    // Tables or columns changed under us.
    case 942:
    case 904: return retry_class::schema;
    default: return retry_class::fatal;
    }
}

bool ora_row_data_error(int number) noexcept {
    switch (number) {
    case 1400:   // cannot insert NULL
    case 1407:   // cannot update to NULL
    case 1401:   // inserted value too large for column
    case 12899:  // value too large for column
    case 1438:   // value larger than specified precision
    case 1426:   // numeric overflow
    case 1722:   // invalid number
    case 1465:   // invalid hex number
    case 1830:   // date format picture ends before converting entire input string
    case 1839:   // date not valid for month specified
    case 1841:   // (full) year must be between -4713 and +9999
    case 1843:   // not a valid month
    case 1847:   // day of month must be between 1 and last day of month
    case 1850:   // hour must be between 0 and 23
    case 1851:   // minutes must be between 0 and 59
    case 1852:   // seconds must be between 0 and 59
    case 1861:   // literal does not match format string
    case 1873:   // the leading precision of the interval is too small
    case 1878:   // specified field not found in datetime or interval (a DST gap)
    case 2290:   // check constraint violated
    case 22835:  // buffer too small for CLOB to CHAR or BLOB to RAW conversion
    case 40441:  // JSON syntax error
        return true;
    default: return false;
    }
}

}  // namespace molt::replicator::oracle
