import { routeConsoleToLog } from '../utils/log'

// First of the plugins, so nothing printed after it (the "listening" line, a library's warning,
// an unhandled rejection) leaves the production server as anything but one JSON line.
export default defineNitroPlugin(() => {
  routeConsoleToLog()
})
