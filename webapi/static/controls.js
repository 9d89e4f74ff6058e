// Small controls the pages share: a button, and a remove button that asks for a second click.

const CONFIRM_MS = 4000;

export function button(text, className, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.addEventListener("click", onClick);
  return element;
}

/** A button that asks for a second click before it acts (removals cannot be undone). */
export function confirmButton(text, onConfirm) {
  const element = button(text, "small danger-outline", async () => {
    if (element.dataset.armed !== "1") {
      element.dataset.armed = "1";
      element.textContent = "Confirm remove";
      setTimeout(() => {
        element.dataset.armed = "";
        element.textContent = text;
      }, CONFIRM_MS);
      return;
    }
    element.disabled = true;
    await onConfirm();
    element.disabled = false;
  });
  return element;
}
