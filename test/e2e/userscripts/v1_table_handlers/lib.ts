export const libraryText: string = "Hello Library!";
