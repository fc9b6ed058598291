import { startBrowserStack } from './stack.js';

/** Starts the stack once; its addresses reach the tests through the environment. */
export default async function globalSetup(): Promise<() => Promise<void>> {
  const stack = await startBrowserStack();
  Object.assign(process.env, stack.env, {
    CONSOLE_URL: stack.consoleUrl,
    CONSOLE_READ_ONLY_URL: stack.readOnlyUrl,
    STANDIN_CONTROL_URL: stack.controlUrl,
  });
  return () => stack.stop();
}
